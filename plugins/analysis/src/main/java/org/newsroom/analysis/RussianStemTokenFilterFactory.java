package org.newsroom.analysis;

import org.apache.lucene.analysis.TokenStream;
import org.elasticsearch.plugin.NamedComponent;
import org.elasticsearch.plugin.analysis.TokenFilterFactory;
import org.newsroom.analysis.lucene.NewsAnalyzers;

/** Token filter: ё to е, then Snowball Russian stemming (expects lowercase input). */
@NamedComponent("newsroom_russian_stem")
public class RussianStemTokenFilterFactory implements TokenFilterFactory {
    @Override
    public TokenStream create(TokenStream tokenStream) {
        return NewsAnalyzers.russianStem(tokenStream);
    }
}

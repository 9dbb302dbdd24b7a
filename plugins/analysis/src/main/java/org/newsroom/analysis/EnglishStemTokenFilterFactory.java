package org.newsroom.analysis;

import org.apache.lucene.analysis.TokenStream;
import org.elasticsearch.plugin.NamedComponent;
import org.elasticsearch.plugin.analysis.TokenFilterFactory;
import org.newsroom.analysis.lucene.NewsAnalyzers;

/** Token filter: English Porter stemming (expects lowercase input; put a possessive/stop step before it if needed). */
@NamedComponent("newsroom_english_stem")
public class EnglishStemTokenFilterFactory implements TokenFilterFactory {
    @Override
    public TokenStream create(TokenStream tokenStream) {
        return NewsAnalyzers.englishStem(tokenStream);
    }
}
